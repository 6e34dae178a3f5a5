package config

func (v *validator) linking() {}
