package config

func (v *validator) linking() {
	v.enum("linking.no_match", v.cfg.Linking.NoMatch, "no-match behaviour", "deny", "external", "password")
}
