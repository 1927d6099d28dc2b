/**
 * Should-fail conformance cases the parser deliberately accepts, each because real applications emit such
 * input and refusing it would lose the whole scrape. Keyed "<corpus>/<case>". The conformance test asserts
 * these parse, so the list stays honest.
 */
export const ACCEPTED_DEVIATIONS: Record<string, string> = {
  'prometheus-text/common_error_0':
    'no newline after the last line: the Prometheus server itself scrapes such bodies (prometheus-text/prom_parse_0 ends the same way), so apps that forget it work with Prometheus today',
};
