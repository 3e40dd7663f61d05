package podtopod

import (
	"fmt"
	"strconv"
)

// CheckMaxPairs checks --max-pairs: a count, 0 for the default.
func CheckMaxPairs(v string) error {
	n, err := strconv.Atoi(v)
	if err != nil {
		return fmt.Errorf("is not a whole number of pairs (0 means the default of %d)", DefaultMaxPairs)
	}
	if n < 0 {
		return fmt.Errorf("is negative (0 means the default of %d)", DefaultMaxPairs)
	}
	return nil
}
