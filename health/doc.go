// Package health reports whether a consumer is ready and live, as a value a
// program reads ([Status], from [Checker.Health]) and as the http.Handlers of
// Kubernetes probes ([Live] for /livez, [Ready] for /readyz).
//
// group.Consumer, claim.Reclaimer and queue.Consumer implement [Checker].
// Their Health method is safe for concurrent use and cheap (atomic loads
// and one short lock; the consumer updates its state once per round trip to
// Redis, never per message), sends nothing to Redis, and may be called
// before, during and after Run.
//
// # Ready and live
//
// A consumer is ready while it does its work: Run has prepared Redis
// (created or found the consumer group, checked the key types, taken the
// consumer name), the group exists, Redis answered the consumer's last call,
// and Run is neither draining nor stopped. Use readiness for what waits on a
// working consumer: a rolling update, a dashboard, an alert.
//
// A consumer is live unless only a restart of its process can help: Run
// returned an error (a key of the wrong type, a missing permission), or one
// of its calls to Redis has hung far past any timeout ([WedgedAfter]). Redis
// being down does not make a consumer not live, on purpose: restarting does
// not bring Redis back, a consumer already rides out an outage and resumes
// by itself, and a liveness probe that failed with Redis would have
// Kubernetes restart every pod of the deployment at once, in a loop, for as
// long as the outage lasts.
//
// # Probes
//
// Mount the handlers on a port of their own (the bodies name keys and carry
// Redis's error text):
//
//	mux := http.NewServeMux()
//	mux.Handle("/livez", health.Live(consumer, reclaimer))
//	mux.Handle("/readyz", health.Ready(consumer, reclaimer))
//
// Each answers 200 when every checker passes, else 503, with a body in the
// manner of the Kubernetes API server's: "ok", or one line per checker
// ("[+]name ok", "[-]name failed: reason") when one fails or with ?verbose.
// ?format=json gives every field of every [Status]; ?exclude=name leaves a
// checker out.
//
// In the pod spec, a readinessProbe on /readyz and a livenessProbe on
// /livez with the kubelet's defaults (every 10s, three failures) suit most
// consumers: a brief Redis blip that fails one readiness probe does not
// take a pod out of service. A consumer that stops on ctx (SIGTERM) reports
// not ready while it drains, and stays live.
package health
