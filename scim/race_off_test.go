//go:build !race

package scim

const raceEnabled = false
