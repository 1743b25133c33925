// For a test whose waits depend on other processes (servers, clients, child nodes): should one
// never end, the test's timeout says where it stood. `at(step, promise)` names the wait now
// under way; unless `passed()` was called, the abort of the test's signal (its timeout, but also
// any end of the test) prints the step and whatever `report()` returns.
export function waitSteps(t, first, report = () => '') {
  let step = first;
  let passed = false;
  t.signal.addEventListener('abort', () => {
    if (passed) return;
    console.error(`${t.name}: stopped while waiting for: ${step}`);
    const more = report();
    if (more) console.error(more);
  });
  return {
    at(name, promise) {
      step = name;
      return promise;
    },
    passed() {
      passed = true;
    },
  };
}
