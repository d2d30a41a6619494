/* Sensors and alarms across the nodes of a cluster.
 *
 * A sensor gateway sends its readings to one node, which evaluates them
 * and holds the sensor's open alarms. The other nodes must still show the
 * sensor live (the 3D feeds of subscribers they hold) and must not take
 * its silence on their side for an interruption. So the node that takes a
 * reading announces each new latest value on the bus ("latest", the
 * readings of one loop turn in one message), and every alarm it stores
 * ("alarm"); the others apply the values to their sensor table (feeds
 * only, no evaluation) and show the alarms in their feeds. The
 * interruption scan and the escalations of each node look after the
 * sensors it takes, and the first node alive (cluster.h) also after those
 * that no live node is known to take: one that never reported since the
 * nodes started, or whose node died.
 *
 * Does nothing without the bus. Main loop only. */
#ifndef YJT_SENSOR_BUS_H
#define YJT_SENSOR_BUS_H

/* After the sensors and the bus have started, before the alarms. */
void sensor_bus_init(void);
void sensor_bus_shutdown(void);

#endif
