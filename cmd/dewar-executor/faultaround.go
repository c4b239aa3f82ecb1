package main

import (
	"go.uber.org/zap"

	"github.com/dewarhq/dewar/internal/faultaround"
)

// logFaultAround says whether the kernel maps the executable's pages one
// at a time (package faultaround did its work in init) or 64 KiB at a time
// (README, "Executor overhead to reserve in Aurora").
func logFaultAround(log *zap.Logger) {
	registered, kept, err := faultaround.Status()
	switch {
	case kept:
		log.Info("the kernel's fault-around stays on for the executable", zap.String("because", faultaround.EnvVar+"=kernel"))
	case err != nil:
		log.Info("the kernel's fault-around stays on for the executable: the executor's resident set is about 3 MiB larger",
			zap.Error(err))
	default:
		log.Info("the kernel's fault-around is off for the executable: its pages are mapped as they are touched",
			zap.Uint64("bytes", registered))
	}
}
