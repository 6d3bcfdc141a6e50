import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * Ready checks that a broker takes writes: it creates the topic
 * "switchyard.ready" when missing, produces one record to it with acks=all,
 * and looks up the group coordinator (which creates the offsets topic, so the
 * first consumer group of a test does not wait for it). It exits 0 on success
 * and 1 on any failure, within about 20 seconds.
 *
 * Usage: java -cp JARS Ready BOOTSTRAP
 */
public class Ready {
    private static final String TOPIC = "switchyard.ready";

    public static void main(String[] args) {
        if (args.length != 1) {
            System.err.println("usage: Ready BOOTSTRAP");
            System.exit(2);
        }
        try {
            createTopic(args[0]);
            produce(args[0]);
            findCoordinator(args[0]);
        } catch (Exception e) {
            Throwable cause = e instanceof ExecutionException && e.getCause() != null ? e.getCause() : e;
            System.err.println("broker not ready: " + cause);
            System.exit(1);
        }
        System.exit(0);
    }

    private static Properties adminProps(String bootstrap) {
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "3000");
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "10000");
        return props;
    }

    private static void createTopic(String bootstrap) throws Exception {
        try (Admin admin = Admin.create(adminProps(bootstrap))) {
            if (admin.listTopics().names().get(5, TimeUnit.SECONDS).contains(TOPIC)) {
                return;
            }
            try {
                admin.createTopics(List.of(new NewTopic(TOPIC, 1, (short) 1))).all().get(5, TimeUnit.SECONDS);
            } catch (ExecutionException e) {
                if (!(e.getCause() instanceof TopicExistsException)) {
                    throw e;
                }
            }
        }
    }

    private static void findCoordinator(String bootstrap) throws Exception {
        try (Admin admin = Admin.create(adminProps(bootstrap))) {
            admin.listConsumerGroupOffsets(TOPIC).all().get(10, TimeUnit.SECONDS);
        }
    }

    private static void produce(String bootstrap) throws Exception {
        Map<String, Object> props = Map.of(
                ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap,
                ProducerConfig.ACKS_CONFIG, "all",
                ProducerConfig.MAX_BLOCK_MS_CONFIG, 5000,
                ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, 3000,
                ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 5000,
                ProducerConfig.LINGER_MS_CONFIG, 0);
        try (KafkaProducer<String, String> producer =
                new KafkaProducer<>(props, new StringSerializer(), new StringSerializer())) {
            RecordMetadata md = producer.send(new ProducerRecord<>(TOPIC, "ready", "ready")).get(6, TimeUnit.SECONDS);
            System.err.println("wrote " + TOPIC + "-" + md.partition() + "@" + md.offset());
        }
    }
}
