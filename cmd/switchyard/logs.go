package main

import (
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/switchyard/switchyard/queue"
	"github.com/switchyard/switchyard/queue/embedded"
	"github.com/switchyard/switchyard/queue/kafka"
)

// openLog opens Kafka when brokers are configured, else the embedded log in
// the data directory. It returns a short description for the start-up log.
func openLog(cfg config, logger *zap.Logger) (queue.Log, string, error) {
	if len(cfg.Kafka.Brokers) > 0 {
		log, err := kafka.New(kafka.Config{
			Brokers:           cfg.Kafka.Brokers,
			Partitions:        cfg.Log.Partitions,
			ReplicationFactor: cfg.Kafka.ReplicationFactor,
			Compression:       cfg.Kafka.Compression,
			BatchTimeout:      time.Duration(cfg.Kafka.BatchTimeout),
		}, logger.With(zap.String("component", "kafka")))
		if err != nil {
			return nil, "", fmt.Errorf("kafka: %w", err)
		}
		return log, fmt.Sprintf("kafka %v", cfg.Kafka.Brokers), nil
	}
	log, err := embedded.Open(embedded.Config{
		Dir:            cfg.DataDir,
		Partitions:     cfg.Log.Partitions,
		RetentionAge:   time.Duration(cfg.Log.RetentionAge),
		RetentionBytes: cfg.Log.RetentionBytes,
	}, logger.With(zap.String("component", "embedded-log")))
	if err != nil {
		return nil, "", fmt.Errorf("data_dir: %w", err)
	}
	return log, "embedded " + cfg.DataDir, nil
}
