package config

func (v *validator) policies() {}
