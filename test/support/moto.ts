// The local stack and the tests share one way of running moto.
export { freePort, startMoto, stopMoto } from "../../local/moto";
