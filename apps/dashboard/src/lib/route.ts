/**
 * A route parameter back to the id it names. Ids never contain '%' (protocol id charset), so decoding is
 * safe whether or not the router already decoded it; a catch-all segment list is re-joined, because node
 * and link ids may contain '/'.
 */
export function paramToId(param: string | string[] | undefined): string {
  const parts = Array.isArray(param) ? param : param === undefined ? [] : [param];
  return parts
    .map((p) => {
      try {
        return decodeURIComponent(p);
      } catch {
        return p;
      }
    })
    .join('/');
}
