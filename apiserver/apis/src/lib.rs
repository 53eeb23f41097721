//! Defaulting and validation per API group (mirrors pkg/apis/<group>/{v1/defaults.go,validation}).
