//go:build race

package client

// raceEnabled: the race detector slows the single-goroutine simulations tenfold without
// checking anything in them, so the large ones are skipped under -race.
const raceEnabled = true
