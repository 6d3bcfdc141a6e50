package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"go.uber.org/zap"

	"github.com/switchyard/switchyard/queue"
)

// tail prints the messages of a topic, one JSON document per line, like kcat.
func tail(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("tail", stderr)
	topic := fs.String("topic", "events", "`topic` to read: events or dlq (or the names set in the config)")
	fromBeginning := fs.Bool("from-beginning", false, "start at the oldest retained message instead of the end")
	exit := fs.Bool("exit", false, "stop once every partition is read to its end instead of waiting for more")
	meta := fs.Bool("meta", false, `wrap each message as {"topic","partition","offset","time","key","value"}`)
	cfg, logger, err := setUp(fs, args, stderr)
	if err != nil {
		return err
	}
	switch *topic {
	case "events":
		*topic = cfg.eventsTopic()
	case "dlq":
		*topic = cfg.dlqTopic()
	}
	log, _, err := openLog(cfg, logger, nil)
	if err != nil {
		return err
	}
	defer log.Close()

	from := queue.Position{Kind: queue.Last}
	if *fromBeginning {
		from = queue.Position{Kind: queue.First}
	}
	var next func(context.Context) (queue.Message, error)
	if *exit {
		messages, err := queue.ReadRange(ctx, log, *topic, from, queue.Position{Kind: queue.Last})
		if err != nil {
			return fmt.Errorf("reading topic %s: %w", *topic, err)
		}
		defer messages.Close()
		next = messages.Fetch
	} else {
		reader, err := log.Read(ctx, *topic, from)
		if err != nil {
			return fmt.Errorf("reading topic %s: %w", *topic, err)
		}
		defer reader.Close()
		next = reader.Fetch
	}

	out := bufio.NewWriter(stdout)
	defer out.Flush()
	for {
		if !*exit {
			if err := out.Flush(); err != nil {
				return err
			}
		}
		msg, err := next(ctx)
		if err != nil {
			if errors.Is(err, io.EOF) || (errors.Is(err, context.Canceled) && ctx.Err() != nil) {
				return nil
			}
			return fmt.Errorf("reading topic %s: %w", *topic, err)
		}
		if err := writeMessage(out, msg, *meta); err != nil {
			logger.Warn("printing message", zap.Int("partition", msg.Partition), zap.Int64("offset", msg.Offset), zap.Error(err))
		}
	}
}

func writeMessage(w *bufio.Writer, msg queue.Message, meta bool) error {
	if !meta {
		if _, err := w.Write(msg.Value); err != nil {
			return err
		}
		return w.WriteByte('\n')
	}
	value := json.RawMessage(msg.Value)
	if !json.Valid(msg.Value) {
		quoted, _ := json.Marshal(string(msg.Value)) // a string always marshals
		value = quoted
	}
	line, err := json.Marshal(struct {
		Topic     string          `json:"topic"`
		Partition int             `json:"partition"`
		Offset    int64           `json:"offset"`
		Time      time.Time       `json:"time"`
		Key       string          `json:"key"`
		Value     json.RawMessage `json:"value"`
	}{msg.Topic, msg.Partition, msg.Offset, msg.Time.UTC(), string(msg.Key), value})
	if err != nil {
		return err
	}
	if _, err := w.Write(line); err != nil {
		return err
	}
	return w.WriteByte('\n')
}
