// Package faultproxy is a TCP proxy for tests that injects network faults
// between a client and a server (streamgroup uses it between consumers and
// Redis).
//
// A [Proxy] listens on a loopback port and forwards every connection it
// accepts to one target address, byte for byte. While it runs, a test can:
//
//   - [Proxy.Cut] every open connection and refuse new ones for a while
//     (a refused connection is accepted and reset at once, so the client
//     sees a connection error, not a hang);
//   - [Proxy.SetLatency]: delay every chunk of data, in each direction;
//   - [Proxy.Stall] forwarding for a while: connections stay open but no
//     byte moves in either direction, like a network partition that TCP
//     has not noticed yet;
//   - [Proxy.Heal] all of it at once.
//
// The listen address never changes, so clients reconnect through the proxy
// to a target that was restarted on its own address.
//
// # Lifecycle
//
// [Listen] starts the proxy; [Proxy.Close] stops listening, closes every
// connection and returns once every goroutine the proxy started has
// returned. A Proxy is safe for concurrent use. It is meant for tests and
// fault-injection tools, not for production traffic: it does not half-close
// (when either side of a connection ends, both are closed).
package faultproxy
