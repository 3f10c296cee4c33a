package listwire

import (
	"encoding/json"
	"time"
)

// DeadRecord is the JSON object a consumer pushes to the dead-letter list
// (docs/wire-format.md); queue.ParseDeadLetter reads it.
type DeadRecord struct {
	Dead     int    `json:"sgdead"`
	Queue    string `json:"queue"`
	ID       string `json:"id,omitempty"`
	Consumer string `json:"consumer,omitempty"`
	Attempts int64  `json:"attempts"`
	Error    string `json:"error"`
	At       int64  `json:"at"`
	Job      string `json:"job"`
}

// EncodeDead returns the record of a dead job; the engine bounds reason.
func EncodeDead(queue, consumer, id string, attempts int64, reason, jobText string) string {
	b, err := json.Marshal(DeadRecord{
		Dead: 1, Queue: queue, ID: id, Consumer: consumer, Attempts: attempts,
		Error: reason, At: time.Now().UnixMilli(), Job: jobText,
	})
	if err != nil {
		panic("queue: encode dead letter: " + err.Error())
	}
	return string(b)
}
