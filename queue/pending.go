package queue

import (
	"container/heap"
	"time"
)

type pendKind uint8

const (
	kindRedeliver pendKind = iota // a failed job waiting for its retry
	kindDead                      // a dead-lettering that failed, to try again
	kindRequeue                   // a requeue that failed, to try again
)

// pending is work the retry loop runs when due.
type pending struct {
	due    time.Time
	kind   pendKind
	j      *job
	reason string // kindDead: why
	tries  int    // failed attempts at the Redis operation
	again  bool   // kindRedeliver: a rewrite was tried (its new element is registered)
}

// pendHeap is a min-heap of pending work by due time.
type pendHeap []*pending

func (h pendHeap) Len() int           { return len(h) }
func (h pendHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h pendHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *pendHeap) Push(x any)        { *h = append(*h, x.(*pending)) }
func (h *pendHeap) Pop() any {
	old := *h
	p := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return p
}

func (h *pendHeap) push(p *pending) { heap.Push(h, p) }
func (h *pendHeap) pop() *pending   { return heap.Pop(h).(*pending) }
