// The board's pinned teams (a lead and their direct reports) and what the console sends when
// the board changes. Pure, so it can be tested without a page.
import { availabilityOf } from './presence.js';

/** The most teams one board holds, and the most members a pinned team shows. */
export const MAX_TEAMS = 50;
export const MAX_TEAM_MEMBERS = 50;

/** The people a pinned team shows: the lead first, then the members (each once). */
export function teamPeople(pin) {
  const seen = new Set();
  const people = [];
  for (const p of [pin && pin.lead, ...((pin && pin.members) || [])]) {
    if (!p || seen.has(p.id)) continue;
    seen.add(p.id);
    people.push(p);
  }
  return people;
}

/**
 * How many of a team's shown people (lead and members) are available now, by `presenceOf`
 * (the presence the stream last told, else the response's): `{available, total}`.
 */
export function availableCount(pin, presenceOf) {
  const people = teamPeople(pin);
  const available = people.filter((p) => availabilityOf(presenceOf(p)) === 'available').length;
  return { available, total: people.length };
}

/** Members not shown in a pinned team (the server sends at most 50 of them). */
export function membersNotShown(pin) {
  const shown = ((pin && pin.members) || []).length;
  return Math.max(0, ((pin && pin.members_total) || 0) - shown);
}

/** A team pin for `lead` from their team answer (`GET /api/v1/people/{id}/team`). */
export function teamPin(lead, team) {
  const members = ((team && team.reports) || []).filter((p) => p.id !== lead.id).slice(0, MAX_TEAM_MEMBERS);
  return { lead, members, members_total: Math.max((team && team.reports_total) || 0, members.length) };
}

/** Whether `leadId`'s team is among `teams`. */
export function hasTeam(teams, leadId) {
  return (teams || []).some((pin) => pin.lead && pin.lead.id === leadId);
}

/** `teams` with `pin`'s team added at the end, or taken out when it is there. */
export function toggleTeam(teams, pin) {
  const id = pin.lead.id;
  return hasTeam(teams, id) ? teams.filter((p) => p.lead.id !== id) : [...(teams || []), pin];
}

/** The body of `PUT /api/v1/me/favourites`: the people and the teams' leads, in board order. */
export function favouritesBody(items, teams) {
  return {
    ids: (items || []).map((p) => p.id),
    teams: (teams || []).filter((pin) => pin && pin.lead).map((pin) => pin.lead.id),
  };
}

/** Everyone the board shows, each once: the pinned people, then the teams' leads and members. */
export function boardPeople(items, teams) {
  const seen = new Set();
  const people = [];
  for (const p of [...(items || []), ...(teams || []).flatMap(teamPeople)]) {
    if (seen.has(p.id)) continue;
    seen.add(p.id);
    people.push(p);
  }
  return people;
}
