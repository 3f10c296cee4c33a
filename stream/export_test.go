package stream

// Queued returns how many single adds wait for a pipeline slot.
func (p *Producer) Queued() int {
	p.co.mu.Lock()
	defer p.co.mu.Unlock()
	n := 0
	for _, c := range p.co.queue {
		if c.queued {
			n++
		}
	}
	return n
}
