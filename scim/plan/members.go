package plan

import (
	"slices"
)

// diffMembers compares a matched group's target members (target user ids) with the desired
// members (user externalIds). Members that are skipped source records are left as they are;
// members deleted by this plan leave the group with their deletion, which costs no request.
// Both sides are walked sorted, without maps: this runs for every membership of the directory.
func (m *matcher) diffMembers(group Ref, current []string, want []string, users *userResolution, skippedUsers map[string]bool) MemberChange {
	mc := MemberChange{Group: group}
	wantIDs := make([]string, 0, len(want))
	for _, ext := range want {
		if users.blocked[ext] {
			continue
		}
		if id, exists := users.targetID[ext]; exists {
			wantIDs = append(wantIDs, id)
		} else {
			mc.Add = append(mc.Add, Ref{ExternalID: ext, Name: ext}) // created in this run
		}
	}
	slices.Sort(wantIDs)
	if !slices.IsSorted(current) {
		current = slices.Sorted(slices.Values(current))
	}
	i, j := 0, 0
	for i < len(wantIDs) || j < len(current) {
		switch {
		case j == len(current) || (i < len(wantIDs) && wantIDs[i] < current[j]):
			id := wantIDs[i]
			ext := users.extByTargetID[id]
			mc.Add = append(mc.Add, Ref{ID: id, ExternalID: ext, Name: m.userName(id, ext)})
			i++
		case i == len(wantIDs) || current[j] < wantIDs[i]:
			id := current[j]
			j++
			if users.deleted[id] || users.untouchable[id] {
				continue
			}
			ext := users.extByTargetID[id]
			if skippedUsers[ext] {
				continue
			}
			mc.Remove = append(mc.Remove, Ref{ID: id, ExternalID: ext, Name: m.userName(id, ext)})
		default:
			i++
			j++
		}
	}
	return mc
}

func (m *matcher) userName(id, ext string) string {
	if u := m.users.byID[id]; u != nil {
		return u.UserName
	}
	return ext
}
