// Reads one key per line on stdin and prints "key partition", computed by the
// Java producer's own code (BuiltInPartitioner.partitionForKey, i.e.
// toPositive(murmur2(key)) % numPartitions).
// Run: java -cp "$KAFKA_LIBS/*" bench/kafka-clients/JavaPartition.java 200 < keys
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import org.apache.kafka.clients.producer.internals.BuiltInPartitioner;

public class JavaPartition {
  public static void main(String[] args) throws Exception {
    int n = Integer.parseInt(args[0]);
    BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    StringBuilder out = new StringBuilder();
    String line;
    while ((line = in.readLine()) != null) {
      if (line.isEmpty()) continue;
      out.append(line).append(' ')
         .append(BuiltInPartitioner.partitionForKey(line.getBytes(StandardCharsets.UTF_8), n)).append('\n');
    }
    System.out.print(out);
  }
}
