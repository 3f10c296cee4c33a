package queue

import (
	"testing"

	"github.com/streamgroup/streamgroup/internal/script"
)

// Every script's declared commands match its source: script.New, which
// newScripts calls, panics otherwise.
func TestScriptsDeclareTheirCommands(t *testing.T) {
	s := newScripts()
	for _, sc := range []*script.Script{s.fetch, s.pop, s.recover, s.move, s.bump, s.leave} {
		if sc == nil || sc.Name() == "" {
			t.Errorf("newScripts left a script out: %+v", s)
		}
	}
}
