// `npm run bench`: runs every benchmark in this process, one after another, and prints figures beside targets.
const suites = process.argv.slice(2);
const all = ['parser', 'aggregator', 'sidecar', 'startup'];
for (const name of suites.length > 0 ? suites : all) {
  console.log(`\n== ${name} ==`);
  const mod = (await import(`./${name}.js`)) as { run: () => Promise<void> };
  await mod.run();
}
