package health_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os/signal"
	"syscall"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/streamgroup/streamgroup/group"
	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/health"
	"github.com/streamgroup/streamgroup/stream"
)

// A consumer with its Kubernetes probes on :8081. It needs Redis: the
// example is compiled, not run.
func Example() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379"})
	defer rdb.Close()

	c, err := group.NewConsumer(rdb, "orders", "billing", "pod-1",
		handler.Func(func(ctx context.Context, msg *stream.Message) error { return nil }), nil)
	if err != nil {
		log.Fatal(err)
	}

	mux := http.NewServeMux()
	mux.Handle("/livez", health.Live(c))
	mux.Handle("/readyz", health.Ready(c))
	srv := &http.Server{Addr: ":8081", Handler: mux}
	var g errgroup.Group
	g.Go(func() error {
		if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})

	// While Run drains after SIGTERM, /readyz answers 503 and /livez 200.
	if err := c.Run(ctx); err != nil {
		log.Print(err)
	}
	_ = srv.Shutdown(context.Background())
	if err := g.Wait(); err != nil {
		log.Print(err)
	}
}

// A check of the program's own next to its consumers'.
func ExampleFunc() {
	cache := health.Func(func() health.Status {
		return health.Status{Name: "cache", Live: true, Reason: "warming up"}
	})
	rec := httptest.NewRecorder()
	health.Ready(cache).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	fmt.Print(rec.Code, "\n", rec.Body)
	// Output:
	// 503
	// [-]cache failed: warming up
	// readyz check failed
}
