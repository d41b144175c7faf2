package connectors

// MappedTarget is one target of a compiled mapping and its expression.
type MappedTarget struct {
	// Kind is user or group; Target the target's name as in MappingConfig.
	Kind   string `json:"kind"`
	Target string `json:"target"`
	// Expression is the expression's text; FromConfig is true when the configuration maps the
	// target, false for the flavour's default.
	Expression string `json:"expression"`
	FromConfig bool   `json:"fromConfig"`
}

// Targets lists what the mapping maps, user targets in the order of UserTargets, then the group
// displayName. Targets that neither the flavour nor the configuration maps are left out.
func (m *Mapping) Targets() []MappedTarget {
	var out []MappedTarget
	for i, p := range m.user {
		if p != nil {
			out = append(out, MappedTarget{Kind: "user", Target: userTargets[i].name, Expression: p.text, FromConfig: p.fromConfig()})
		}
	}
	if p := m.groupDisplayName; p != nil {
		out = append(out, MappedTarget{Kind: "group", Target: "displayName", Expression: p.text, FromConfig: p.fromConfig()})
	}
	return out
}
