// Which (sources -> targets) the page offers: exactly the `routes` of GET /models, each with the
// model that serves every target and the validation score routing chose it by. The pickers build a
// configuration from checkboxes, so this module answers, for the sources ticked so far, which
// targets can be added, and what serves them. No DOM here.

export const MODALITIES = ["T1", "T1c", "T2", "FLAIR"]; // canonical order, as the API writes it

/** Modalities in canonical order: the API's configuration keys list them so. */
export function canonical(modalities) {
  return MODALITIES.filter((m) => modalities.includes(m));
}

/** The key of a configuration as GET /models writes it, e.g. "T1,T1c->T2". */
export function configurationKey(src, dst) {
  return `${canonical(src).join(",")}->${canonical(dst).join(",")}`;
}

/** What the page knows about serving: routes by key, and the modalities some route takes as a source. */
export function routeTable(body) {
  const routes = new Map(body.routes.map((route) => [route.configuration, route]));
  const sources = new Set(body.routes.flatMap((route) => route.src));
  const anyToAny = new Set(body.models.filter((m) => m.any_to_any).map((m) => m.name));
  return { routes, sources, anyToAny };
}

/** The route of (src, dst), or null when the store cannot serve it. */
export function routeOf(table, src, dst) {
  if (!src.length || !dst.length) return null;
  return table.routes.get(configurationKey(src, dst)) || null;
}

/** The route that would serve `target` added to the chosen targets, or null when none would. */
export function routeWith(table, src, dst, target) {
  if (src.includes(target)) return null;
  return routeOf(table, src, dst.includes(target) ? dst : [...dst, target]);
}

/** Targets still served when the sources change: the rest are dropped, not kept as a request that would 404. */
export function keptTargets(table, src, dst) {
  return canonical(dst.filter((target) => routeWith(table, src, [], target)));
}

/**
 * The first configuration shown: the first route (fewest sources first) whose every target a
 * dedicated model serves, as a store without an any-to-any model always offered; else the first route.
 */
export function defaultChoice(table) {
  const routes = [...table.routes.values()];
  const dedicated = routes.find((route) => Object.values(route.targets).every((t) => !table.anyToAny.has(t.model)));
  const first = dedicated || routes[0];
  return first ? { src: first.src, dst: first.dst } : { src: [], dst: [] };
}

/** "model · brain SSIM 0.812", or "model · no recorded score". */
export function describeTarget(route, target) {
  const served = route.targets[target];
  const score = served.score === null || served.score === undefined ? "no recorded score" : `brain SSIM ${served.score.toFixed(3)}`;
  return `${served.model} · ${score}`;
}
