/** The README's examples, run by the tests as written (only the ports are the test's). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, type Instance } from './instance.js';

/** A fenced block of the README's client library section, with the instances' ports in place of 3000 and 3001. */
export function readmeExample(lang: 'js' | 'html', a: Instance, b: Instance): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Client library'));
  const block = new RegExp('```' + lang + '\\n([\\s\\S]*?)```').exec(section);
  if (!block) throw new Error(`no ${lang} example in the README's client library section`);
  return block[1].replaceAll('localhost:3000', `127.0.0.1:${a.port}`).replaceAll('localhost:3001', `127.0.0.1:${b.port}`);
}
