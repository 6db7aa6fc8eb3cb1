// Every test under Node runs on the node:fs implementation of the platform seam.
import { setPlatform } from "../src/platform/index.js";
import { nodePlatform } from "../src/platform/node.js";

setPlatform(nodePlatform);
