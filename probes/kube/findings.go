package kube

import (
	"sort"

	"github.com/netsleuth/netsleuth/model"
)

// SortFindings orders findings by subject, then ID, then title, so a probe's
// output is the same on every run over the same cluster state.
func SortFindings(fs []model.Finding) {
	sort.SliceStable(fs, func(i, j int) bool {
		si, sj := subjectKey(fs[i].Subject), subjectKey(fs[j].Subject)
		if si != sj {
			return si < sj
		}
		if fs[i].ID != fs[j].ID {
			return fs[i].ID < fs[j].ID
		}
		return fs[i].Title < fs[j].Title
	})
}

func subjectKey(s *model.Subject) string {
	if s == nil {
		return ""
	}
	return s.String()
}
