package blockconn_test

import (
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/streamgroup/streamgroup/internal/blockconn"
)

// New must not read the shared client's maintenance-notifications
// setting: go-redis writes its Mode while it opens the client's connections
// (when the server refuses the handshake, as Redis 7.0 does), under a lock
// of its own that New cannot take. Here a goroutine writes it with no
// ordering against New, as go-redis does; under -race (as CI runs) this
// failed while New copied the setting. No server is needed: New does not
// connect.
func TestNewDoesNotReadSharedMaintNotifications(t *testing.T) {
	for _, shared := range []redis.UniversalClient{
		redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeAuto}}),
		redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:1"}, MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeAuto}}),
	} {
		var cfg *maintnotifications.Config
		switch c := shared.(type) {
		case *redis.Client:
			cfg = c.Options().MaintNotificationsConfig
		case *redis.ClusterClient:
			cfg = c.Options().MaintNotificationsConfig
		}
		written := make(chan struct{})
		go func() {
			cfg.Mode = maintnotifications.ModeDisabled
			close(written)
		}()
		c := blockconn.New(shared, blockconn.UnblockOrClose)
		<-written
		c.Close()
		_ = shared.Close()
	}
}
