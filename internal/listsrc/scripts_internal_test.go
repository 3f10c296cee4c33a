package listsrc

import (
	"testing"

	"github.com/streamgroup/streamgroup/internal/script"
)

// Every script's declared commands match its source: script.New panics
// otherwise, when the package is initialized.
func TestScriptsDeclareTheirCommands(t *testing.T) {
	for _, sc := range []*script.Script{fetchScript, popScript, recoverScript, moveScript, bumpScript, leaveScript} {
		if sc == nil || sc.Name() == "" {
			t.Errorf("a script is missing: %+v", sc)
		}
	}
}
