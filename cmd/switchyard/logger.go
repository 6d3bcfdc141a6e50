package main

import (
	"fmt"
	"io"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// A flood of one message (a dead letter per event of a failing
// destination, say) must not flood the log: each message, at each level, is
// written at most logBurst times per logTick and dropped after that. Other
// messages are unaffected; the counts behind a flood live in the metrics
// (switchyard_router_dead_letters_total, for one).
const (
	logTick  = time.Second
	logBurst = 10
)

// newLogger writes JSON logs at level to w, sampled as logBurst says.
func newLogger(level string, w io.Writer) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("log_level: %q is not one of debug, info, warn, error", level)
	}
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	core := zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.Lock(zapcore.AddSync(w)), lvl)
	return zap.New(zapcore.NewSamplerWithOptions(core, logTick, logBurst, 0)), nil
}
