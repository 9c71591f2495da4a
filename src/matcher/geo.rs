//! A grid index for geo terms (`bounding_box:`, `point_radius:`, track `locations`), so that
//! rules with no word at all are found by cell, never by a scan of all rules.

use super::terms::radius_km;
use crate::message::GeoBox;
use crate::rule::Term;
use std::collections::HashMap;

/// Boxes covering more cells than this are kept in a list checked for every geo message.
const MAX_CELLS_PER_TERM: usize = 4096;
/// Place boxes covering more cells than this make the lookup return every geo term.
const MAX_CELLS_PER_LOOKUP: usize = 4096;

/// Geo terms by 1-degree cell.
#[derive(Clone, Debug, Default)]
pub(crate) struct GeoIndex {
    cells: HashMap<u32, Vec<u32>>,
    wide: Vec<u32>,
    all: Vec<u32>,
}

fn cell_x(lon: f64) -> i32 {
    (lon.floor() as i32 + 180).clamp(0, 359)
}

fn cell_y(lat: f64) -> i32 {
    (lat.floor() as i32 + 90).clamp(0, 179)
}

fn cell(x: i32, y: i32) -> u32 {
    (y * 360 + x) as u32
}

/// The box that contains everything a geo term can match.
fn cover(term: &Term) -> Option<GeoBox> {
    match term {
        Term::BoundingBox(b) | Term::Locations(b) => Some(*b),
        Term::PointRadius { lon, lat, radius, unit } => {
            let km = radius_km(*radius, *unit);
            // Angular radius, with a margin for rounding. Latitudes within it of the centre;
            // longitudes within asin(sin d / cos lat) (the circle's widest point).
            let d = (km / 6371.0) * 1.01 + 1e-9;
            let south = (lat - d.to_degrees()).max(-90.0);
            let north = (lat + d.to_degrees()).min(90.0);
            let ratio = d.sin() / lat.to_radians().cos();
            if d >= std::f64::consts::FRAC_PI_2
                || !(0.0..1.0).contains(&ratio)
                || north >= 90.0
                || south <= -90.0
            {
                return Some(GeoBox { west: -180.0, south, east: 180.0, north });
            }
            let dlon = ratio.asin().to_degrees();
            let (west, east) = (lon - dlon, lon + dlon);
            if west < -180.0 || east > 180.0 {
                // Crossing the antimeridian: cover every longitude.
                Some(GeoBox { west: -180.0, south, east: 180.0, north })
            } else {
                Some(GeoBox { west, south, east, north })
            }
        }
        _ => None,
    }
}

impl GeoIndex {
    /// Whether there is no geo term.
    pub(crate) fn is_empty(&self) -> bool {
        self.all.is_empty()
    }

    /// Registers the geo `term` as key term `id`.
    pub(crate) fn insert(&mut self, term: &Term, id: u32) {
        self.all.push(id);
        let Some(b) = cover(term) else {
            self.wide.push(id);
            return;
        };
        let (x0, x1, y0, y1) = (cell_x(b.west), cell_x(b.east), cell_y(b.south), cell_y(b.north));
        let n = ((x1 - x0 + 1) as usize) * ((y1 - y0 + 1) as usize);
        if n > MAX_CELLS_PER_TERM {
            self.wide.push(id);
            return;
        }
        for y in y0..=y1 {
            for x in x0..=x1 {
                self.cells.entry(cell(x, y)).or_default().push(id);
            }
        }
    }

    /// Pushes every geo term that may match a message at `point` or in `place`.
    pub(crate) fn candidates(
        &self,
        point: Option<(f64, f64)>,
        place: Option<GeoBox>,
        out: &mut Vec<u32>,
    ) {
        let valid = |v: f64| v.is_finite();
        if let Some((lon, lat)) = point {
            // A message with a point is judged by its point alone (its place is not looked at).
            if (-180.0..=180.0).contains(&lon) && (-90.0..=90.0).contains(&lat) {
                if let Some(ids) = self.cells.get(&cell(cell_x(lon), cell_y(lat))) {
                    out.extend_from_slice(ids);
                }
                out.extend_from_slice(&self.wide);
            } else if valid(lon) && valid(lat) {
                // Off the map (the JSON reader refuses such points; the API does not): the
                // grid cannot place it, but `point_radius`'s great-circle distance still
                // measures it (a latitude past a pole wraps round), so verify every term.
                out.extend_from_slice(&self.all);
            }
            // Not a number: no geo term matches it.
        } else if let Some(b) = place {
            if ![b.west, b.south, b.east, b.north].into_iter().all(valid) {
                return;
            }
            let (x0, x1, y0, y1) =
                (cell_x(b.west), cell_x(b.east), cell_y(b.south), cell_y(b.north));
            if x1 < x0 || y1 < y0 {
                out.extend_from_slice(&self.all);
                return;
            }
            let n = ((x1 - x0 + 1) as usize) * ((y1 - y0 + 1) as usize);
            if n > MAX_CELLS_PER_LOOKUP {
                out.extend_from_slice(&self.all);
                return;
            }
            for y in y0..=y1 {
                for x in x0..=x1 {
                    if let Some(ids) = self.cells.get(&cell(x, y)) {
                        out.extend_from_slice(ids);
                    }
                }
            }
            out.extend_from_slice(&self.wide);
        }
    }

    /// Renumbers every term id.
    pub(crate) fn remap(&mut self, f: impl Fn(u32) -> u32) {
        for ids in self.cells.values_mut() {
            ids.iter_mut().for_each(|v| *v = f(*v));
        }
        self.wide.iter_mut().for_each(|v| *v = f(*v));
        self.all.iter_mut().for_each(|v| *v = f(*v));
    }

    /// The ids of the terms inserted, in order.
    pub(crate) fn ids(&self) -> &[u32] {
        &self.all
    }

    /// Adds the terms of `other` (their ids distinct from this index's).
    pub(crate) fn append(&mut self, other: GeoIndex) {
        for (cell, ids) in other.cells {
            self.cells.entry(cell).or_default().extend(ids);
        }
        self.wide.extend(other.wide);
        self.all.extend(other.all);
    }

    /// Heap bytes used.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.cells.capacity() * (4 + 24 + 1)
            + self.cells.values().map(|v| v.capacity() * 4).sum::<usize>()
            + (self.wide.capacity() + self.all.capacity()) * 4
    }
}
