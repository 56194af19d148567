//go:build race

package ws

// The race detector makes sync.Pool drop items at random, so allocation
// counts are only asserted without it ("make test" runs that pass too).
const raceEnabled = true
