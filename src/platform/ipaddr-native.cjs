// In the native executable, ipaddr.js is an embedded library of its own (build.sh aliases "ipaddr.js" to this
// file): its bytecode is read only when the plugin first meets an IPv6 address, not at every start.
/* global __sys, __lib_ipaddr */
if (!__sys.load("ipaddr")) throw new Error("ipaddr.js is not embedded in this build");
module.exports = __lib_ipaddr;
