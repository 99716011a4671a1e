package probe;

import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;

@SpringBootApplication
public class ProbeApplication {
	public static void main(String[] args) {
		SpringApplication.run(ProbeApplication.class, args);
	}
}
