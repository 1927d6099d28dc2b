// `npm run bench`: runs every benchmark in this process, one after another, and prints figures beside targets.
// Arguments pick suites (`sidecar`), or one part of a suite (`sidecar:pages` runs its exported runPages).
const suites = process.argv.slice(2);
const all = ['parser', 'aggregator', 'sidecar', 'startup'];
for (const arg of suites.length > 0 ? suites : all) {
  const [name, part] = arg.split(':') as [string, string | undefined];
  console.log(`\n== ${arg} ==`);
  const mod = (await import(`./${name}.js`)) as Record<string, () => Promise<void>>;
  const fn = part ? mod[`run${part[0]!.toUpperCase()}${part.slice(1)}`] : mod['run'];
  if (!fn) throw new Error(`suite ${name} has no part ${part}`);
  await fn();
}
