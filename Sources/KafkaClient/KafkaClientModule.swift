// The KafkaClient target; see KafkaClient.swift once it lands.
