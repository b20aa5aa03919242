"use strict";
// ocpp-ws-io requires its logger at load time but calls it only when logging is on. The
// benchmark server turns logging off; if a code path calls the logger anyway, fail loudly
// rather than measure a server that silently does less (or more) than the real one.
function refuse(name) {
  return () => {
    throw new Error(`voltlog-io.${name} called: the benchmark server must run with logging: false`);
  };
}
module.exports = {
  createLogger: refuse("createLogger"),
  consoleTransport: refuse("consoleTransport"),
  prettyTransport: refuse("prettyTransport"),
};
