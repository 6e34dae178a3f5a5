package config

func (v *validator) saml() {}
