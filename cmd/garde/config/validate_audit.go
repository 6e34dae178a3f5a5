package config

func (v *validator) audit() {}
