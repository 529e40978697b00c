// Package suggest finds the word a mistyped one was probably meant to be,
// for the "did you mean" hints of settings files (package config) and
// pipeline files (package topology). It imports nothing of the project, so
// both can use it.
package suggest

import (
	"fmt"
	"strings"
)

// maxDistance is the largest edit distance that still reads as a typo.
const maxDistance = 2

// Closest returns the candidate nearest to word, ignoring case, or "" when
// none is within edit distance 2. Short words need a proportionally closer
// match (at most one edit per two runes of word): suggesting "a" for "x"
// would be noise, not help. A candidate equal to word is never suggested;
// one equal to it but for case is ("Name" suggests "name"). Of candidates
// at the same distance, the first in candidates wins, so callers pass them
// in a stable order.
func Closest(word string, candidates []string) string {
	best, bestDist := "", maxDistance+1
	lw := strings.ToLower(word)
	n := len([]rune(word))
	for _, c := range candidates {
		if c == word {
			continue
		}
		d := Distance(lw, strings.ToLower(c))
		if d < bestDist && 2*d <= n {
			best, bestDist = c, d
		}
	}
	return best
}

// DidYouMean returns `; did you mean "x"?` naming Closest(word,
// candidates), or "" when there is none, to append to an error message.
func DidYouMean(word string, candidates []string) string {
	if s := Closest(word, candidates); s != "" {
		return fmt.Sprintf("; did you mean %q?", s)
	}
	return ""
}

// Distance is the Levenshtein distance between a and b, in runes: the
// fewest insertions, deletions and substitutions that turn a into b.
func Distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
