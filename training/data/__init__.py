"""Reading BraTS-layout cases, generating phantom ones, and turning volumes into training slices."""
