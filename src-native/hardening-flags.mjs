// Prints the hardening flags the C++ compiler node-gyp will use accepts, for binding.gyp:
// each is tried on an empty translation unit, so an older or different compiler (clang,
// another architecture: -fcf-protection is x86 only) builds without the ones it lacks.
import { spawnSync } from 'node:child_process';

const WANTED = ['-fvisibility-inlines-hidden', '-fstack-clash-protection', '-fcf-protection'];
const compiler = (process.env.CXX || 'c++').split(' ').filter(Boolean);

const accepted = WANTED.filter((flag) => {
  const result = spawnSync(compiler[0], [...compiler.slice(1), flag, '-Werror', '-x', 'c++', '-fsyntax-only', '-'], {
    input: 'int main() { return 0; }\n',
    stdio: ['pipe', 'ignore', 'ignore'],
  });
  return result.status === 0;
});
process.stdout.write(accepted.join(' '));
