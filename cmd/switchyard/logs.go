package main

import (
	"fmt"

	"go.uber.org/zap"

	"github.com/switchyard/switchyard/queue"
	"github.com/switchyard/switchyard/queue/embedded"
	"github.com/switchyard/switchyard/queue/kafka"
)

// openLog opens Kafka when brokers are configured, else the embedded log in
// the data directory. It returns a short description for the start-up log.
func openLog(cfg config, logger *zap.Logger) (queue.Log, string, error) {
	if len(cfg.Kafka.Brokers) > 0 {
		kc := cfg.Kafka
		kc.Partitions = cfg.Log.Embedded.Partitions
		log, err := kafka.New(kc, logger.With(zap.String("component", "kafka")))
		if err != nil {
			return nil, "", fmt.Errorf("kafka: %w", err)
		}
		return log, fmt.Sprintf("kafka %v", cfg.Kafka.Brokers), nil
	}
	ec := cfg.Log.Embedded
	ec.Dir = cfg.DataDir
	log, err := embedded.Open(ec, logger.With(zap.String("component", "embedded-log")))
	if err != nil {
		return nil, "", fmt.Errorf("data_dir: %w", err)
	}
	return log, "embedded " + cfg.DataDir, nil
}
