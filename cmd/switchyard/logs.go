package main

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/switchyard/switchyard/queue"
	"github.com/switchyard/switchyard/queue/embedded"
	"github.com/switchyard/switchyard/queue/kafka"
)

// openLog opens Kafka when brokers are configured, else the embedded log in
// the data directory, whose metrics go on reg unless reg is nil. It returns
// a short description for the start-up log.
func openLog(cfg config, logger *zap.Logger, reg prometheus.Registerer) (queue.Log, string, error) {
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
	if reg != nil {
		metrics, err := embedded.NewMetrics(reg)
		if err != nil {
			return nil, "", fmt.Errorf("registering metrics: %w", err)
		}
		ec.Metrics = metrics
	}
	log, err := embedded.Open(ec, logger.With(zap.String("component", "embedded-log")))
	if err != nil {
		return nil, "", fmt.Errorf("data_dir: %w", err)
	}
	return log, "embedded " + cfg.DataDir, nil
}
