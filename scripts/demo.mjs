// Placeholder until the dashboard and agent land: says so plainly rather than pretending.
console.log('rdmaq is built. The demo (dashboard + four agents with real traffic) is not there yet.');
