package exactly.apicurio;

import java.util.ArrayList;
import javax.enterprise.context.ApplicationScoped;
import javax.enterprise.inject.Produces;
import io.apicurio.common.apps.config.DynamicConfigPropertyList;

// The list the config-index build extension would generate (its
// deployment artifact is not on Maven Central): no dynamic properties.
@ApplicationScoped
public class Producers {
    @Produces
    @ApplicationScoped
    DynamicConfigPropertyList dynamicConfigPropertyList() {
        return new DynamicConfigPropertyList(new ArrayList<>());
    }
}
