// mimalloc: directory reads, imports and indexing allocate many small strings; it is markedly
// faster than glibc malloc at that (see README, Performance).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    switchboard::cli::main()
}
