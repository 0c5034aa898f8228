package bench

import "sync"

// connectParallel bounds the connects in flight at once: enough to connect
// thousands of clients in seconds, few enough that the broker's listen
// backlog (Mosquitto's is 100) does not drop SYNs into one-second retries.
const connectParallel = 64

// connectAll connects the clients in parallel, at most connectParallel at
// once, and returns the first error after every started connect has ended.
// It is the run's start barrier (as nats bench has one): the clock starts
// when it returns, so every subscriber is connected and subscribed before
// the first publish and connecting 500 clients one after the other no longer
// delays the run or spreads its start.
func connectAll[T any](clients []T, connect func(T) error) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	sem := make(chan struct{}, connectParallel)
	for _, c := range clients {
		mu.Lock()
		failed := first != nil
		mu.Unlock()
		if failed {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := connect(c); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}
