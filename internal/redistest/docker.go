package redistest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/moby/moby/client"
	"github.com/redis/go-redis/v9"
	"github.com/testcontainers/testcontainers-go"
	tcredis "github.com/testcontainers/testcontainers-go/modules/redis"
)

// ContainerImage is the pinned image of the shared container.
const ContainerImage = "redis:7.4.2"

// dockerProbeTimeout bounds the check for a Docker daemon, so a machine
// without one falls through to redis-server at once instead of hanging.
const dockerProbeTimeout = 3 * time.Second

// dockerAvailable reports, via testcontainers' own discovery (DOCKER_HOST,
// Docker contexts, ~/.testcontainers.properties, the default socket), whether
// a Docker daemon answers a ping within dockerProbeTimeout.
func dockerAvailable() (err error) {
	defer func() {
		// Older testcontainers releases panic when no Docker host is found.
		if r := recover(); r != nil {
			err = fmt.Errorf("no Docker daemon: %v", r)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), dockerProbeTimeout)
	defer cancel()
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return fmt.Errorf("no Docker daemon: %w", err)
	}
	defer cli.Close()
	if _, err := cli.Ping(ctx, client.PingOptions{}); err != nil {
		return fmt.Errorf("no Docker daemon: %w", err)
	}
	return nil
}

// startContainer starts ContainerImage when Docker answers, and returns its
// host:port and a func that terminates it. A container outliving a crashed
// test process is removed by testcontainers' reaper (Ryuk).
func startContainer() (addr string, stop func(), err error) {
	if err := dockerAvailable(); err != nil {
		return "", nil, err
	}
	// Pulling the image can take a while on a cold machine.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ctr, err := tcredis.Run(ctx, ContainerImage)
	if err != nil {
		return "", nil, errors.Join(err, testcontainers.TerminateContainer(ctr))
	}
	uri, err := ctr.ConnectionString(ctx)
	if err == nil {
		var opts *redis.Options
		if opts, err = redis.ParseURL(uri); err == nil {
			addr = opts.Addr
			err = ping(addr, 10*time.Second)
		}
	}
	if err != nil {
		return "", nil, errors.Join(fmt.Errorf("container %s: %w", ContainerImage, err), testcontainers.TerminateContainer(ctr))
	}
	return addr, func() { _ = testcontainers.TerminateContainer(ctr) }, nil
}
