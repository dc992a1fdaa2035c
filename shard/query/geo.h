/* geo.h - geo points, distances and shapes as Qdrant's geo conditions use them, and the grid
 * cells the geo payload index files points under. */
#ifndef DV_GEO_H
#define DV_GEO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mpk.h"

struct geo_point {
    double lon, lat; /* degrees: lon in [-180, 180], lat in [-90, 90] */
};

/* Mean Earth radius in meters (the one the haversine distance of Qdrant's geo crate uses). */
#define GEO_EARTH_RADIUS 6371008.8

/* Great-circle distance in meters (haversine). */
double geo_distance(struct geo_point a, struct geo_point b);

/* Reads a payload geo point: a map with numbers "lon" in [-180, 180] and "lat" in [-90, 90]
 * (other keys ignored). False for anything else. */
bool geo_read_point(struct mpk r, struct geo_point *out);

/* Whether p is inside the ring (n points, closed or not), by ray casting on lon/lat as plane
 * coordinates (Qdrant's polygon semantics). Points exactly on an edge may go either way. */
bool geo_in_ring(const struct geo_point *ring, size_t n, struct geo_point p);

/* A lat/lon box: lon_min > lon_max wraps across the antimeridian. */
struct geo_box {
    double lat_min, lat_max, lon_min, lon_max;
};

bool geo_in_box(const struct geo_box *b, struct geo_point p);

/* A box holding every point within `radius` meters of c (wider when unsure: near the poles or
 * the antimeridian it spans every longitude). */
struct geo_box geo_radius_box(struct geo_point c, double radius);

/*
 * Grid cells: level L cuts latitude and longitude into 2^L bands each (L = 0 .. GEO_LEVELS-1).
 * The index files a point under its cell at every level; a query covers its box with the cells
 * of the finest level needing at most `max_cells` cells and unions their posting lists.
 */
#define GEO_LEVELS 16

int64_t geo_cell(int level, struct geo_point p);

/* Calls fn with every cell covering box b at the finest level needing at most max_cells
 * (level 0 needs one); stops when fn returns true. */
typedef bool (*geo_cell_fn)(void *ctx, int64_t cell);
void geo_cover(const struct geo_box *b, size_t max_cells, geo_cell_fn fn, void *ctx);

#endif
